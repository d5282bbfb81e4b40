<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="Symbology">
  <pipe>
    <!-- Transparent up to 0.5, then a light-to-strong orange-red glaze: the image stays readable under it. -->
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" classificationMin="0" classificationMax="1" nodataColor="">
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="0" maximumValue="1">
          <item label="0.0" value="0" color="#ffffb2" alpha="0"/>
          <item label="0.5" value="0.5" color="#fecc5c" alpha="0"/>
          <item label="0.8" value="0.8" color="#fd8d3c" alpha="70"/>
          <item label="0.95" value="0.95" color="#f03b20" alpha="130"/>
          <item label="1.0" value="1" color="#bd0026" alpha="170"/>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0"/>
    <huesaturation saturation="0" colorizeOn="0" grayscaleMode="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
